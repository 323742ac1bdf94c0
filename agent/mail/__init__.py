"""Mail transports, message models and MIME handling."""
