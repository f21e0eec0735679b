"""Open Dental's rules as pure functions: paths, names, folders, tooth numbers, Notes.

Standard library only.
"""
