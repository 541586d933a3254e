"""The phone-desk queue (the 96110 practice): people a human must call back."""
