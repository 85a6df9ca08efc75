"""digitpad's web layer: blueprints that parse requests, call the core and shape the answers."""
