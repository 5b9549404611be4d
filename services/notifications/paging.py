"""One page of a List RPC (services.common.pagination's keyset tokens): the size and start
from the request, the rows read off the event loop, and the next page's token, none when
this page came short."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from services.common import pagination
from services.common.storage import run_sync

Row = TypeVar("Row")


class PageRequest(Protocol):
    @property
    def page_size(self) -> int: ...

    @property
    def page_token(self) -> str: ...


async def page(
    request: PageRequest,
    read: Callable[[int, str | None], list[Row]],
    key: Callable[[Row], str],
) -> tuple[list[Row], str]:
    """`read(size, start)` (blocking) gives up to `size` rows after the key `start` (None: from
    the first); `key` is a row's key, which the next page starts after."""
    size = pagination.page_size(request.page_size)
    start = pagination.decode_token(request.page_token)
    found = await run_sync(read, size, start)
    return found, pagination.next_token(found, size, key)


def order_key(row: Any) -> str:
    """The key of a delivery log's rows (webhook deliveries, messages, chat posts)."""
    return str(row.order_key)
