import pytest
from serve_helpers import make_client, wait_ready


@pytest.fixture
def client():
    with make_client() as c:
        wait_ready(c)
        yield c
