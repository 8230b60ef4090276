// facegate console: a few lines of progressive enhancement; every page works without them.
"use strict";

// Ask before destructive forms (withdraw consent, unlock a door).
document.addEventListener("submit", (e) => {
  const msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});

document.addEventListener("click", (e) => {
  const back = e.target.closest && e.target.closest("[data-back]");
  if (back && window.history.length > 1) { e.preventDefault(); window.history.back(); }
});

const LABELS = ["When", "Camera", "Door", "Decision", "Who", "Score / threshold", "Snapshot"];

function cell(row, text) {
  const td = document.createElement("td");
  td.setAttribute("data-label", LABELS[row.children.length] || "");
  if (text instanceof Node) td.appendChild(text); else td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
  return td;
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

// The event timeline, live: each new event (server-sent, as the API's stream) becomes a row.
function follow(table) {
  const body = table.tBodies[0];
  const door = table.getAttribute("data-door") || "";
  const state = document.getElementById("live-state");
  const source = new EventSource(table.getAttribute("data-live"));
  const kinds = ["granted", "denied", "unknown", "camera_state", "doorbell", "motion", "tamper",
    "door_opened", "door_closed", "door_held_open", "door_forced", "note", "event"];
  const add = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (_) { return; }
    const d = ev.details || {};
    if (door && d.door !== door) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.className = "new";
    row.setAttribute("data-kind", ev.kind);
    const link = document.createElement("a");
    link.href = "/events/" + encodeURIComponent(ev.id);
    link.textContent = when(ev.at);
    cell(row, link);
    cell(row, ev.camera);
    cell(row, d.door || "");
    const badge = document.createElement("span");
    badge.className = "badge kind-" + String(ev.kind).replace(/[^a-z_]/g, "");
    badge.textContent = ev.kind;
    cell(row, badge);
    cell(row, d.name || (ev.kind === "unknown" ? "unknown visitor" : ""));
    cell(row, (d.score != null ? d.score : "") + (d.threshold != null ? " / " + d.threshold : ""));
    if (ev.snapshot && ev.kind === "unknown") {
      const a = document.createElement("a");
      a.href = link.href;
      const img = document.createElement("img");
      img.className = "thumb";
      img.src = "/events/" + encodeURIComponent(ev.id) + "/snapshot.jpg";
      img.alt = "Redacted snapshot of the unknown visitor, event " + ev.id;
      a.appendChild(img);
      cell(row, a);
    } else {
      cell(row, ev.snapshot ? "kept" : "");
    }
    body.insertBefore(row, body.firstChild);
    if (state) state.textContent = "Live: new " + ev.kind + " event at " + ev.camera + ".";
  };
  kinds.forEach((k) => source.addEventListener(k, add));
  source.onmessage = add;
  source.onopen = () => { table.setAttribute("data-connected", "true"); };
  source.onerror = () => { if (state) state.textContent = "Live updates paused; retrying…"; };
}

// A camera's live view: the newest frame, fetched again every `data-refresh` ms while visible.
function refresh(img) {
  const base = img.getAttribute("src").split("?")[0];
  const every = Number(img.getAttribute("data-refresh")) || 1000;
  const next = () => {
    if (document.hidden) { setTimeout(next, every); return; }
    const fresh = new Image();
    fresh.onload = () => { img.src = fresh.src; img.setAttribute("data-frames", String(Number(img.getAttribute("data-frames") || 0) + 1)); setTimeout(next, every); };
    fresh.onerror = () => setTimeout(next, every * 2);
    fresh.src = base + "?t=" + Date.now();
    const caption = document.getElementById(img.getAttribute("data-caption") || "");
    if (caption) {
      fetch(base.replace(/\.jpg$/, ".json"), {credentials: "same-origin"})
        .then((r) => (r.ok ? r.json() : null))
        .then((d) => { caption.textContent = d && d.faces.length ? d.faces.join(" · ") : "no face in view"; })
        .catch(() => {});
    }
  };
  setTimeout(next, every);
}

// A photo from the browser's webcam, added to a form's file input (shown only where a webcam API exists).
function webcam(box) {
  const input = document.getElementById(box.getAttribute("data-webcam"));
  if (!input || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.DataTransfer) return;
  box.hidden = false;
  const start = box.querySelector("[data-start]");
  const snap = box.querySelector("[data-snap]");
  const video = box.querySelector("video");
  const note = box.querySelector("[data-note]");
  let stream = null;
  start.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {width: 1280, height: 720}, audio: false});
    } catch (err) { note.textContent = "No webcam available: " + err.name; return; }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    snap.hidden = false;  // only once there is a picture to take
  });
  snap.addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    if (!video.videoWidth) { note.textContent = "The webcam has no picture yet; try again."; return; }
    canvas.toBlob((blob) => {
      if (!blob) { note.textContent = "The photo could not be taken; try again."; return; }
      const dt = new DataTransfer();
      Array.from(input.files).forEach((f) => dt.items.add(f));
      dt.items.add(new File([blob], "webcam-" + Date.now() + ".jpg", {type: "image/jpeg"}));
      input.files = dt.files;
      note.textContent = input.files.length + " photo(s) ready to send.";
      if (stream) stream.getTracks().forEach((t) => t.stop());
      video.hidden = true; snap.hidden = true;
    }, "image/jpeg", 0.92);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-webcam]").forEach(webcam);
  document.querySelectorAll("table[data-live]").forEach(follow);
  document.querySelectorAll("img[data-refresh]").forEach(refresh);
});
