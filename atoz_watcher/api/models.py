"""Request and response bodies, as the OpenAPI schema documents them.

Field names are Open Dental's (``PatNum``, ``rawBase64``, ``filePath``...), case-sensitive. Each
validator raises a message that names its field; ``errors.describe`` turns it into the 400 body.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from atoz_watcher.db.models import IMG_TYPE_NAMES
from atoz_watcher.net.sftp_address import SftpError, parse_address
from atoz_watcher.rules.teeth import ToothNumberError, normalise

BIGINT_MAX = 2**63 - 1
MAX_VARCHAR = 255  # Description, ToothNumbers: varchar(255)
MAX_URL_CHARS = 8192
EXTENSION_PATTERN = r"^\.?[A-Za-z0-9]{1,10}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$"
_EXTENSION = re.compile(EXTENSION_PATTERN, re.ASCII)
_DATE = re.compile(DATE_PATTERN, re.ASCII)
FIRST_YEAR = 1880  # Open Dental's "no date" is any date before 1880

ImgTypeName = Literal["Document", "Radiograph", "Photo", "File", "Attachment"]
IMG_TYPES: dict[str, int] = {name: number for number, name in enumerate(IMG_TYPE_NAMES)}


class FieldError(ValueError):
    """A complete message for the client, naming its field (``errors.describe`` shows it
    as it is)."""


def _whole_number(value: object) -> object:
    # pydantic would take true as 1.
    if isinstance(value, bool):
        raise ValueError("a whole number is expected")  # noqa: TRY004 - pydantic wants ValueError
    return value


def _unicode(value: str) -> str:
    """JSON's \\ud800 escapes decode to lone surrogates, which no database column can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    return value


def parse_date(value: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` or ``yyyy-MM-dd`` (midnight); years 1880 to 9999."""
    if not _DATE.fullmatch(value):
        raise FieldError('DateCreated must be "yyyy-MM-dd HH:mm:ss" or "yyyy-MM-dd"')
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(f"DateCreated is not a real date: {value}") from None
    if parsed.year < FIRST_YEAR:
        raise FieldError(f"DateCreated must be in {FIRST_YEAR} or later")
    return parsed


def _date(value: str) -> str:
    parse_date(value)
    return value


def _extension(value: str) -> str:
    """``.jpg``; also taken without the dot (``jpg``)."""
    if not _EXTENSION.fullmatch(value):
        raise FieldError("extension must be a dot and 1 to 10 letters or digits, such as .jpg")
    return value if value.startswith(".") else f".{value}"


def _teeth(value: str) -> str:
    try:
        teeth = normalise(value)
    except ToothNumberError as exc:
        raise FieldError(str(exc)) from None
    if len(teeth) > MAX_VARCHAR:
        raise FieldError(f"ToothNumbers is longer than {MAX_VARCHAR} characters once expanded")
    return teeth


def _url(value: str) -> str:
    if not value:
        raise FieldError("url is required")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):  # noqa: PLR2004 - ASCII controls
        raise FieldError("url must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number or out of range
    except ValueError:
        raise FieldError("url is not a valid URL") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise FieldError("url must be an http or https URL with a host")
    return value


def _raw_base64(value: str) -> str:
    if not value:
        raise FieldError("rawBase64 is required")
    return value


Text = Annotated[str, AfterValidator(_unicode)]
PatNum = Annotated[
    int,
    BeforeValidator(_whole_number),
    Field(
        alias="PatNum",
        ge=1,
        le=BIGINT_MAX,
        description="patient.PatNum",
        examples=[1],
    ),
]
DocCategory = Annotated[
    Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=BIGINT_MAX)] | None,
    Field(
        alias="DocCategory",
        description=(
            "definition.DefNum of an image category (definition.Category=18). "
            "Default (absent, null or 0): the first visible image category."
        ),
        examples=[1],
    ),
]
ImgType = Annotated[
    ImgTypeName | None,
    Field(alias="ImgType", description="Default: Document.", examples=["Photo"]),
]
Description = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_VARCHAR), AfterValidator(_unicode)] | None,
    Field(
        alias="Description",
        description="Default: the stored file's name (Upload), empty (SetByUrl).",
        examples=["Extraoral"],
    ),
]
DateCreated = Annotated[
    Annotated[Text, AfterValidator(_date)] | None,
    Field(
        alias="DateCreated",
        description='"yyyy-MM-dd HH:mm:ss" or "yyyy-MM-dd", server time. Default: now.',
        json_schema_extra={"pattern": DATE_PATTERN},
        examples=["2022-03-15 14:30:00"],
    ),
]
ToothNumbers = Annotated[
    Annotated[
        str, StringConstraints(max_length=4096), AfterValidator(_unicode), AfterValidator(_teeth)
    ]
    | None,
    Field(
        alias="ToothNumbers",
        description=(
            "Tooth numbers separated by commas and/or hyphen ranges (1-32, 51-82, A-T, AS-TS)."
        ),
        examples=["1-5,8"],
    ),
]


class _Request(BaseModel):
    # Unknown fields are ignored, as Open Dental ignores them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class UploadRequest(_Request):
    """POST /documents/Upload: the file itself, base64-encoded."""

    pat_num: PatNum
    raw_base64: Annotated[Text, AfterValidator(_raw_base64)] = Field(
        validation_alias=AliasChoices("rawBase64", "RawBase64"),
        description="The file, base64 (RFC 4648, no line breaks). Also accepted as RawBase64.",
        json_schema_extra={"format": "byte"},
        examples=["iVBORw0KGgo="],
    )
    extension: Annotated[Text, AfterValidator(_extension)] = Field(
        alias="extension",
        description="The file's extension: a dot and 1 to 10 letters or digits (the dot may "
        "be left out).",
        json_schema_extra={"pattern": EXTENSION_PATTERN},
        examples=[".jpg"],
    )
    doc_category: DocCategory = None
    img_type: ImgType = None
    description: Description = None
    date_created: DateCreated = None
    tooth_numbers: ToothNumbers = None


class SetByUrlRequest(_Request):
    """POST /documents/SetByUrl: a placeholder row whose file is downloaded later."""

    pat_num: PatNum
    url: Annotated[
        str,
        StringConstraints(max_length=MAX_URL_CHARS),
        AfterValidator(_unicode),
        AfterValidator(_url),
    ] = Field(
        alias="url",
        description="An http or https URL.",
        examples=["https://www.example.com/myimage.jpg"],
    )
    doc_category: DocCategory = None
    img_type: ImgType = None
    description: Description = None
    date_created: DateCreated = None
    tooth_numbers: ToothNumbers = None


class DocumentOut(BaseModel):
    """A document (DocNum > 0) or a mount (DocNum 0), as GET /documents lists them."""

    model_config = ConfigDict(frozen=True)

    doc_num: int = Field(alias="DocNum", description="0 for a mount.")
    mount_num: int = Field(
        alias="MountNum",
        description="The mount; for a document, the mount it sits on (0: none).",
    )
    pat_num: int = Field(alias="PatNum")
    file_name: str = Field(alias="FileName", description="document.FileName; empty for a mount.")
    file_path: str = Field(
        alias="filePath",
        description="Where the file is, as the practice's machines see it; empty for "
        "InDatabase storage, mounts and documents whose file is not there yet.",
    )
    description: str = Field(alias="Description")
    note: str = Field(
        alias="Note",
        description='A Note holding the file itself shows as "_rawBase64_:" and the extension.',
    )
    date_created: str = Field(alias="DateCreated", description='"yyyy-MM-dd HH:mm:ss" or "".')
    category_name: str = Field(alias="docCategory", description="The category's name.")
    doc_category: int = Field(alias="DocCategory", description="The category's DefNum.")
    img_type: str = Field(
        alias="ImgType",
        description="Document, Radiograph, Photo, File or Attachment; empty for a mount.",
    )
    tooth_numbers: str = Field(alias="ToothNumbers")
    date_t_stamp: str = Field(alias="DateTStamp", description="Empty for a mount.")
    server_date_time: str = Field(alias="serverDateTime")


# -- the SFTP endpoints ---------------------------------------------------------------------------

MAX_SFTP_ADDRESS = 4096
MAX_SFTP_CREDENTIAL = 1024


def _required(field: str) -> AfterValidator:
    def check(value: str) -> str:
        if not value:
            raise FieldError(f"{field} is required")
        return value

    return AfterValidator(check)


def _sftp_address(value: str) -> str:
    try:
        parse_address(value)
    except SftpError as exc:
        raise FieldError(exc.message) from None
    return value


SftpAddressField = Annotated[
    str,
    StringConstraints(max_length=MAX_SFTP_ADDRESS),
    AfterValidator(_unicode),
    _required("SftpAddress"),
    AfterValidator(_sftp_address),
]
SftpCredential = Annotated[
    str, StringConstraints(max_length=MAX_SFTP_CREDENTIAL), AfterValidator(_unicode)
]
SftpPort = Annotated[
    Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=65535)] | None,
    Field(
        alias="SftpPort",
        description="The SFTP site's port. Default (absent or null): 22.",
        examples=[22],
    ),
]
OptionalNum = Annotated[
    Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=BIGINT_MAX)] | None,
    Field(description="Absent, null or 0: not given."),
]


class SftpRequest(_Request):
    """The fields every SFTP endpoint takes."""

    sftp_address: SftpAddressField = Field(
        alias="SftpAddress",
        description=(
            "The SFTP site's host, then the path on it: MySftpSite/folder/file.png. The path "
            "is rooted at the server's /; an IPv6 host is written in brackets ([::1]/x.png)."
        ),
        examples=["MySftpSite/myUsername/Documents/SmithJRadiograph.png"],
    )
    sftp_username: Annotated[SftpCredential, _required("SftpUsername")] = Field(
        alias="SftpUsername", examples=["myUsername"]
    )
    sftp_password: Annotated[SftpCredential, _required("SftpPassword")] = Field(
        alias="SftpPassword",
        description="Never logged, never echoed.",
        json_schema_extra={"format": "password"},
        examples=["myPassword"],
    )
    sftp_port: SftpPort = None

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        # The password never shows in a repr (a traceback, a debugger, a log line).
        return [
            (name, "***" if name == "sftp_password" else value)
            for name, value in super().__repr_args__()
        ]


class UploadSftpRequest(SftpRequest):
    """POST /documents/UploadSftp: pull a file from the client's SFTP site and store it."""

    pat_num: PatNum
    doc_category: DocCategory = None
    img_type: ImgType = None
    date_created: DateCreated = None
    tooth_numbers: ToothNumbers = None


class DownloadSftpRequest(SftpRequest):
    """POST /documents/DownloadSftp: put a document's file, or a mount's composite image, on
    the client's SFTP site."""

    doc_num: OptionalNum = Field(default=None, alias="DocNum", examples=[1])
    mount_num: OptionalNum = Field(default=None, alias="MountNum", examples=[1])


class ThumbnailsRequest(SftpRequest):
    """POST /documents/Thumbnails: the patient's image thumbnails to an SFTP folder."""

    pat_num: PatNum


class DownloadMountRequest(SftpRequest):
    """POST /documents/DownloadMount: a mount's images to an SFTP folder."""

    mount_num: Annotated[int, BeforeValidator(_whole_number)] = Field(
        alias="MountNum", ge=1, le=BIGINT_MAX, examples=[1]
    )


class LocationOut(BaseModel):
    """Where DownloadSftp wrote the file."""

    model_config = ConfigDict(frozen=True)

    location: str = Field(description="The full path of the file written on the SFTP site.")


class FileOut(BaseModel):
    """One file Thumbnails or DownloadMount wrote."""

    model_config = ConfigDict(frozen=True)

    doc_num: int = Field(alias="DocNum")
    file_name: str = Field(alias="FileName")
