"""The Faust edge only: app factory, topics and thin agents."""
