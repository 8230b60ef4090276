"""Templates at rest: what each ciphertext is bound to, and sealing and opening them.

An embedding's ciphertext is bound (GCM associated data) to "<person id>:<template id>", its face
chip's to "<person id>:<template id>:chip": a row copied onto another person, or a chip swapped
for an embedding, does not decrypt. These labels are the on-disk format; nothing else spells them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy.orm import Session

from facegate.gallery.crypto import TemplateCipher
from facegate.gallery.people import NewTemplate, TemplateInfo
from facegate.gallery.schema import TemplateRow

# Encrypts plaintext for a label: `TemplateCipher.encrypt`, looked up when sealing.
Sealer = Callable[[bytes, str], bytes]


def embedding_label(person_id: str, template_id: int) -> str:
    return f"{person_id}:{template_id}"


def chip_label(person_id: str, template_id: int) -> str:
    return f"{embedding_label(person_id, template_id)}:chip"


def seal_template(
    seal: Sealer, person_id: str, template_id: int, embedding: bytes, chip_jpeg: bytes | None
) -> tuple[bytes, bytes | None]:
    """The embedding's ciphertext, then the chip's (None without a chip), in that order."""
    embedding_ct = seal(embedding, embedding_label(person_id, template_id))
    chip_ct = seal(chip_jpeg, chip_label(person_id, template_id)) if chip_jpeg is not None else None
    return embedding_ct, chip_ct


def open_embedding(cipher: TemplateCipher, person_id: str, template_id: int, ct: bytes) -> np.ndarray:
    """The stored embedding (float32). Raises `WrongKey` if the key or the owner is wrong."""
    return np.frombuffer(cipher.decrypt(ct, embedding_label(person_id, template_id)), np.float32)


def open_chip(cipher: TemplateCipher, person_id: str, template_id: int, ct: bytes) -> bytes:
    """The stored face chip (JPEG bytes). Raises `WrongKey` if the key or the owner is wrong."""
    return cipher.decrypt(ct, chip_label(person_id, template_id))


def add_templates(s: Session, person_id: str, drafts: list[NewTemplate], seal: Sealer) -> list[int]:
    """Insert a person's new templates, sealed, in the caller's transaction; returns their ids.

    Ciphertexts are bound to the template ids, which come from the database: the rows are
    inserted, then sealed, before the caller's single commit.
    """
    rows = [
        TemplateRow(
            person_id=person_id,
            space=t.space,
            dim=len(t.embedding) // 4,
            embedding_ct=b"",
            source_sha256=t.source_sha256,
            face_px=t.face_px,
            sharpness=t.sharpness,
            frontal=t.frontal,
            brightness=t.brightness,
        )
        for t in drafts
    ]
    s.add_all(rows)
    s.flush()
    for row, t in zip(rows, drafts, strict=True):
        row.embedding_ct, row.chip_ct = seal_template(seal, person_id, row.id, t.embedding, t.chip_jpeg)
    return [r.id for r in rows]


def template_info(row: TemplateRow) -> TemplateInfo:
    """What is known of a template without opening it."""
    return TemplateInfo(
        row.id,
        row.space,
        row.face_px,
        row.sharpness,
        row.frontal,
        row.brightness,
        row.created_at,
        row.chip_ct is not None,
    )


def reseal(row: TemplateRow, old: TemplateCipher, new: TemplateCipher) -> bool:
    """Re-encrypt a template row's embedding and chip from `old` to `new`, in place, under the
    same labels; returns whether it had a chip."""
    label = embedding_label(row.person_id, row.id)
    row.embedding_ct = new.encrypt(old.decrypt(row.embedding_ct, label), label)
    if row.chip_ct is None:
        return False
    label = chip_label(row.person_id, row.id)
    row.chip_ct = new.encrypt(old.decrypt(row.chip_ct, label), label)
    return True
