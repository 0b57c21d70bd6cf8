"""Executive dashboard (Dash + dash-bootstrap-components): the app factory, layout, callbacks and figures, the one
lake reader (``data.py``), and today also login, response headers, monitoring and the ingest API."""
