"""The service a face_recognition user would write instead: one FastAPI endpoint.

    uvicorn peer_server:app --port 8091

Known people are the photos in examples/gallery; POST /identify (multipart `file`) answers
each face's name or "unknown" at face_recognition's default tolerance 0.6.
"""

from __future__ import annotations

import io
from pathlib import Path

import face_recognition
import numpy as np
from fastapi import FastAPI, File, UploadFile
from PIL import Image

GALLERY = Path(__file__).resolve().parent.parent / "examples" / "gallery"
names: list[str] = []
known: list[np.ndarray] = []
for person in sorted(GALLERY.iterdir()):
    photo = next(person.iterdir())
    known.append(face_recognition.face_encodings(face_recognition.load_image_file(photo))[0])
    names.append(person.name.replace("_", " "))

app = FastAPI()


@app.post("/identify")
def identify(file: UploadFile = File(...)) -> dict[str, list[str]]:
    image = np.asarray(Image.open(io.BytesIO(file.file.read())).convert("RGB"))
    found = []
    for enc in face_recognition.face_encodings(image, face_recognition.face_locations(image)):
        matches = face_recognition.compare_faces(known, enc)
        found.append(names[matches.index(True)] if True in matches else "unknown")
    return {"faces": found}
