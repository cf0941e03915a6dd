"""The Asterisk side the service expects: rendering, checking and prompts for dialplan/."""
