"""The trusted model registry: an HTTP service (``modelseal serve``) and its client.

The server (FastAPI, SQLAlchemy 2, a content-addressed blob store) publishes a model
version only when its signature verifies with a key trusted for the namespace, the
server's own scan finds nothing above the namespace's threshold and an SBOM was
generated; anything else is quarantined with the reasons. The client
(:class:`~modelseal.registry.client.RegistryClient`) pushes with resumable chunked
uploads and pulls with every digest, the signature and the scan verdict verified
before anything lands in the destination.

Heavy dependencies (fastapi, sqlalchemy, boto3, httpx) are imported only by the
submodules that need them; importing this package is cheap.
"""

from modelseal.registry.settings import RegistrySettings

__all__ = ["RegistrySettings"]
