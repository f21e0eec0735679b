"""A patient's name as Open Dental shows it in lists and on printouts. Pure."""

from __future__ import annotations


def name_lf(lname: str, fname: str, preferred: str = "", middle_initial: str = "") -> str:
    """``LName, 'Preferred' FName M``, as Open Dental's ``Patients.GetNameLF`` writes it: the
    preferred name in quotes before the first name, the middle initial after it, each only
    when there is one."""
    name = f"{lname.strip()}, "
    if preferred.strip():
        name += f"'{preferred.strip()}' "
    name += fname.strip()
    if middle_initial.strip():
        name += f" {middle_initial.strip()}"
    return name.strip().removesuffix(",")
