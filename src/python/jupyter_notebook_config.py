# slurmkit's settings for the login node's Jupyter servers (jupyter-notebook --config=<this file>).
#
# Jupyter logs the address of every request that fails, and of redirects, with its query
# string and referer, and so with any token a client put there (the user's own, mistyped, or
# another user's). The token is a secret: it is hidden in every line Jupyter logs.
import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class _HideTokens(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        hidden = _TOKEN.sub(r"\1[hidden]", message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


for _name in ("tornado.access", "tornado.application", "tornado.general", "NotebookApp"):
    logging.getLogger(_name).addFilter(_HideTokens())
