"""Training a run: the request, the session, the loop and its parts."""
