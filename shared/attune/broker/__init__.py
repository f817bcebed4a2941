"""The message broker and its Celery wiring, in one place.

- ``names``: every task name, defined once (the producer sends them, the worker registers them)
- ``app``: the Celery configuration shared by the worker and the API's producer
- ``fs``: the filesystem broker of the embedded mode
- ``send``: enqueueing (the producer side)
- ``notify``: the "job finished" message a waiting request listens for
"""
