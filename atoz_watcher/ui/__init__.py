"""The front-desk page: Today, Inbox, Patients and Health, served under ``/ui/`` beside the API."""
