"""The one place where the messages on Stopline's topics are defined."""
