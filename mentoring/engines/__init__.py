"""The engines the platform runs on outside containers: Apache Kafka and a MongoDB-wire server.

`mentoring engines install` fetches and prepares them once into a cache (`cache.py`); the
launcher (`mentoring/stack.py`) starts them beside the services, with their data on disk.
"""
