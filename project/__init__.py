"""Demo project for vehicle_auth: settings, URLs and the site's own pages."""
