"""Rows as Open Dental writes them: every column it fills, with its own zero values."""

from __future__ import annotations


def blank_document(**values: object) -> dict[str, object]:
    """A ``document`` row with Open Dental's values for everything not given."""
    row: dict[str, object] = {
        "PatNum": 0,
        "FileName": "",
        "Description": "",
        "DocCategory": 0,
        "ImgType": 0,
        "IsFlipped": 0,
        "DegreesRotated": 0,
        "ToothNumbers": "",
        "Note": "",
        "SigIsTopaz": 0,
        "Signature": "",
        "CropX": 0,
        "CropY": 0,
        "CropW": 0,
        "CropH": 0,
        "WindowingMin": 0,
        "WindowingMax": 0,
        "MountItemNum": 0,
        "RawBase64": "",
        "Thumbnail": "",
        "ExternalGUID": "",
        "ExternalSource": "None",
        "ProvNum": 0,
        "IsCropOld": 0,
        "OcrResponseData": "",
        "ImageCaptureType": 0,
        "PrintHeading": 0,
    }
    row.update(values)
    return row
