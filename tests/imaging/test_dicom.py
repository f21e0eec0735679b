"""DICOM windowing as Open Dental stores it in document.WindowingMin/WindowingMax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atoz_watcher.imaging.dicom import Windowing, read_windowing
from tests.support.images import write_dicom


def patched(path: Path, old: bytes, new: bytes) -> Path:
    """``path`` with the one occurrence of ``old`` replaced by ``new`` (a damaged file)."""
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    return path


INT_MAX = 2**31 - 1  # document.WindowingMin/WindowingMax are MySQL int columns


class TestReadWindowing:
    @pytest.mark.parametrize(
        ("elements", "expected"),
        [
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096}, Windowing(0, 4096), id="full-12-bit"
            ),
            pytest.param(
                {"WindowCenter": 40, "WindowWidth": 400}, Windowing(-160, 240), id="negative-min"
            ),
            pytest.param(
                {"WindowCenter": "1000.0", "WindowWidth": "500.0"},
                Windowing(750, 1250),
                id="decimal-strings",
            ),
            pytest.param(
                {"WindowCenter": [40, 300], "WindowWidth": [400, 1500]},
                Windowing(-160, 240),
                id="multi-valued-first",
            ),
            pytest.param(
                {
                    "WindowCenter": 2048,
                    "WindowWidth": 4096,
                    "SmallestImagePixelValue": 10,
                    "LargestImagePixelValue": 3000,
                },
                Windowing(0, 4096),
                id="window-wins-over-pixel-values",
            ),
            pytest.param(
                {"SmallestImagePixelValue": 10, "LargestImagePixelValue": 3000},
                Windowing(10, 3000),
                id="pixel-values",
            ),
            pytest.param(
                {
                    "WindowCenter": 100,
                    "WindowWidth": 0,
                    "SmallestImagePixelValue": 10,
                    "LargestImagePixelValue": 3000,
                },
                Windowing(10, 3000),
                id="zero-width-falls-back",
            ),
            pytest.param(
                {"WindowCenter": 2048, "SmallestImagePixelValue": 5, "LargestImagePixelValue": 9},
                Windowing(5, 9),
                id="centre-without-width",
            ),
            pytest.param({"WindowCenter": 2048}, Windowing(0, 0), id="centre-only"),
            pytest.param({"SmallestImagePixelValue": 10}, Windowing(0, 0), id="smallest-only"),
            pytest.param(
                {"SmallestImagePixelValue": 7, "LargestImagePixelValue": 7},
                Windowing(0, 0),
                id="flat-image",
            ),
            pytest.param({}, Windowing(0, 0), id="nothing"),
            pytest.param(
                {"WindowCenter": 0, "WindowWidth": 2 * INT_MAX},
                Windowing(-INT_MAX, INT_MAX),
                id="widest-that-fits-int",
            ),
            pytest.param(
                {"WindowCenter": 0, "WindowWidth": 2 * INT_MAX + 2},
                Windowing(0, 0),
                id="too-wide-for-int",
            ),
            pytest.param(
                {
                    "WindowCenter": 1,
                    "WindowWidth": "1e300",
                    "SmallestImagePixelValue": 10,
                    "LargestImagePixelValue": 3000,
                },
                Windowing(10, 3000),
                id="huge-width-falls-back",
            ),
        ],
    )
    def test_read_windowing(
        self, tmp_path: Path, elements: dict[str, Any], expected: Windowing
    ) -> None:
        path = write_dicom(tmp_path / "scan.dcm", **elements)
        assert read_windowing(path) == expected

    def test_reads_a_file_with_pixel_data(self, tmp_path: Path) -> None:
        path = write_dicom(
            tmp_path / "scan.dcm",
            WindowCenter=2048,
            WindowWidth=4096,
            SamplesPerPixel=1,
            PhotometricInterpretation="MONOCHROME2",
            PixelData=b"\x00\x01" * 4,
        )
        assert read_windowing(path) == Windowing(0, 4096)

    @pytest.mark.parametrize(
        ("elements", "old", "new"),
        [
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096}, b"4096.0", b"inf   ", id="inf-width"
            ),
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096}, b"2048.0", b"-inf  ", id="inf-centre"
            ),
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096}, b"2048.0", b"nan   ", id="nan-centre"
            ),
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096}, b"4096.0", b"9e999 ", id="overflow"
            ),
        ],
    )
    def test_non_finite_window_is_no_windowing(
        self, tmp_path: Path, elements: dict[str, Any], old: bytes, new: bytes
    ) -> None:
        path = patched(write_dicom(tmp_path / "scan.dcm", **elements), old, new)
        assert read_windowing(path) == Windowing(0, 0)

    @pytest.mark.parametrize(
        ("elements", "old", "new"),
        [
            pytest.param(
                {"WindowCenter": 2048, "WindowWidth": 4096},
                b"\x28\x00\x51\x10DS",
                b"\x28\x00\x51\x10D\x0f",
                id="unknown-vr",
            ),
            pytest.param(
                {"SmallestImagePixelValue": 1, "LargestImagePixelValue": 9},
                b"\x28\x00\x07\x01US\x02\x00\x09\x00",
                b"\x28\x00\x07\x01US\x03\x00\x09\x00\x00",
                id="odd-length-us",
            ),
        ],
    )
    def test_damaged_file_is_a_value_error(
        self, tmp_path: Path, elements: dict[str, Any], old: bytes, new: bytes
    ) -> None:
        path = patched(write_dicom(tmp_path / "scan.dcm", **elements), old, new)
        with pytest.raises(ValueError, match=r"scan\.dcm is not a DICOM file"):
            read_windowing(path)

    @pytest.mark.parametrize("cut", [8, 9, 10, 11], ids=lambda cut: f"cut-at-{cut}")
    def test_file_cut_short_is_a_value_error(self, tmp_path: Path, cut: int) -> None:
        """A copy still in progress: the file ends inside the length of (0002,0001)."""
        path = write_dicom(tmp_path / "scan.dcm")
        data = path.read_bytes()
        header = data.index(b"\x02\x00\x01\x00OB\x00\x00")  # tag, VR, 2 reserved, 4 length
        path.write_bytes(data[: header + cut])
        with pytest.raises(ValueError, match=r"scan\.dcm is not a DICOM file"):
            read_windowing(path)

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200, id="jpeg"),
            pytest.param(b"%PDF-1.7\n" + b"x" * 300, id="pdf"),
            pytest.param(b"\x00" * 128 + b"DIC", id="truncated-magic"),
        ],
    )
    def test_not_dicom_is_a_value_error(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "scan.dcm"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"scan\.dcm is not a DICOM file"):
            read_windowing(path)
