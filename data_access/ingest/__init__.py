"""Ingestion of client-system exports (DATA_CONTRACT.md)."""

from data_access.ingest.pipeline import IngestReport, ingest_file
from data_access.ingest.profiles import Profile, ProfileError, load_profile
from data_access.ingest.reading import FileError

__all__ = ["FileError", "IngestReport", "Profile", "ProfileError", "ingest_file", "load_profile"]
