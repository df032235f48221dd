"""Screens of the app: home (preset picker), run (live / watch), help and confirm modals."""
