"""Cases: opened from an alert or a victim's report; the frame of every instruction."""
