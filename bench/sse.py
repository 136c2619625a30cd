"""The chunks of a streamed OpenAI completion (server-sent events), for the bench scripts."""
import json


def chunks(response):
    """Each JSON chunk of the stream, until its [DONE]."""
    for line in response:
        line = line.strip()
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            yield json.loads(line[6:])
