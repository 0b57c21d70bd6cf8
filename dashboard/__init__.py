"""Executive dashboard (Dash + dash-bootstrap-components): layout, callbacks, figures and the one
data-access module. Empty until the dashboard issue; kept so the package layout is installable and stable."""
