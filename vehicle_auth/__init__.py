"""vehicle_auth: link your site users' cars through Smartcar and keep their tokens fresh."""
