"""FastAGI side of orikaeshi: one route per module, named after its agi_network_script."""
