"""POST /v1/feedback: a thumbs up or down on an answer, stored as a golden-set line."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from service.api import errors
from service.api.errors import ApiError
from service.deps import Shared, require_api_key
from service.feedback import FeedbackError, FeedbackRequest, golden_item

router = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[Depends(require_api_key)])


@router.post(
    "/feedback",
    summary="Judge an answer: stored as a golden-set line that `shiori eval run` reads",
    responses={
        **errors.responses(401, 413, 422),
        422: {
            **errors.responses(422)[422],
            "description": "the request breaks the schema, or a thumbs down does not say what "
            "is right (a correction, or not_in_notes)",
        },
    },
)
async def feedback(body: FeedbackRequest, parts: Shared) -> dict[str, Any]:
    """Thumbs up or down on an answer, with an optional correction. The line appended to
    SHIORI_FEEDBACK_PATH is a golden item (see `service.feedback`): `shiori eval run --dataset
    <that file>` asks its questions again and checks the answers."""
    try:
        item = golden_item(body)
    except FeedbackError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    await parts.feedback.add(item)
    return {"id": item.id, "path": str(parts.feedback.path), "item": item.model_dump()}
