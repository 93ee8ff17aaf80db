"""Alert channels and the transports that deliver through them (webhook, email, Apprise).

The notifier (hcserver/notify.py) builds an `AlertContext` (templates.py) for a flip and awaits
`transports.deliver(channel, ctx, settings)` for each of the check's channels. Import from the
defining modules: this package loads nothing itself, so reading a channel (channels.py) does not
load the SMTP and HTTP clients the transports need.
"""
