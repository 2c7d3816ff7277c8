"""Sending files over the websocket: upload first over HTTP, then name the files in ``send``.

The ``"files"`` list of a send frame is part of the same idempotent send: the
message carries them in order, every member's socket gets them in the message
payload, and a refused list (someone else's upload, a wrong shape) changes nothing.
"""

import io
import uuid
from typing import Any

import pytest

from accounts.models import User
from archive import services as archive_services
from archive.models import StoredFile
from messenger import services
from messenger.models import Conversation, Message, MessageAttachment, MessageRevision
from tests.archive.conftest import PDF, png_bytes
from tests.messenger.conftest import run
from tests.messenger.conftest import signed_in_socket as connect

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_channel_layer", "file_storage"),
]


def upload(user: User, data: bytes = PDF, name: str = "Angebot.pdf") -> StoredFile:
    return archive_services.file_store(upload=io.BytesIO(data), name=name, uploader=user)


def send_frame(
    conversation: Conversation, body: str, files: Any, client_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "send",
        "conversation": conversation.pk,
        "body": body,
        "client_id": client_id or str(uuid.uuid4()),
        "files": files,
    }


def test_a_send_with_files_delivers_them_in_order_to_both_members(
    alice: User, bob: User, dm: Conversation
) -> None:
    pdf, png = upload(alice), upload(alice, png_bytes(), "Lageplan.png")

    async def scenario() -> None:
        a, b = await connect(alice), await connect(bob)
        frame = send_frame(dm, "", [png.pk, pdf.pk])  # only files: an empty body is fine
        await a.send(frame)
        ack = await a.receive_type("ack")
        assert ack["client_id"] == frame["client_id"] and ack["duplicate"] is False
        for socket in (a, b):
            message = (await socket.receive_type("message"))["message"]
            assert message["id"] == ack["message"]
            assert message["body"] == ""
            files = message["files"]
            assert [f["id"] for f in files] == [png.pk, pdf.pk]
            assert [f["name"] for f in files] == ["Lageplan.png", "Angebot.pdf"]
            assert files[0]["image"] is True and files[1]["image"] is False
            assert files[1]["size"] == len(PDF)
            assert files[1]["url"] == f"/files/{pdf.pk}/"
        await a.close()
        await b.close()

    run(scenario)
    message = Message.objects.get()
    assert list(message.attachments.order_by("position").values_list("file_id", flat=True)) == [
        png.pk,
        pdf.pk,
    ]
    revision = MessageRevision.objects.get(message=message)
    assert [f["sha256"] for f in revision.files or []] == [png.sha256, pdf.sha256]


def test_someone_elses_file_is_not_found_and_nothing_is_stored(
    alice: User, bob: User, dm: Conversation
) -> None:
    bobs = upload(bob, name="Bobs.pdf")

    async def scenario() -> None:
        a = await connect(alice)
        frame = send_frame(dm, "look", [bobs.pk])
        await a.send(frame)
        refused = await a.receive_type("error")
        assert refused["code"] == "not_found"
        assert refused["client_id"] == frame["client_id"]
        # An id nobody uploaded is answered the same way.
        await a.send(send_frame(dm, "look", [bobs.pk + 1000]))
        assert (await a.receive_type("error"))["code"] == "not_found"
        await a.close()

    run(scenario)
    assert not Message.objects.exists()
    assert not MessageAttachment.objects.exists()
    assert not MessageRevision.objects.exists()


@pytest.mark.parametrize(
    "files",
    [
        "3",
        3,
        {"id": 3},
        ["3"],
        [3.0],
        [True],
        [None],
        [-1],
        [0],
        [[3]],
    ],
)
def test_a_malformed_files_field_is_refused(alice: User, dm: Conversation, files: Any) -> None:
    async def scenario() -> None:
        a = await connect(alice)
        frame = send_frame(dm, "hello", files)
        await a.send(frame)
        refused = await a.receive_type("error")
        assert refused["code"] == "malformed"
        assert "files" in refused["detail"]
        assert refused["client_id"] == frame["client_id"]
        await a.close()

    run(scenario)
    assert not Message.objects.exists()


def test_the_same_client_id_and_files_twice_make_one_message(
    alice: User, bob: User, dm: Conversation
) -> None:
    pdf, other = upload(alice), upload(alice, png_bytes(), "other.png")

    async def scenario() -> None:
        a = await connect(alice)
        frame = send_frame(dm, "Das Angebot", [pdf.pk])
        await a.send(frame)
        first = await a.receive_type("ack")
        await a.send(frame)  # a reconnect re-sends what was never confirmed
        second = await a.receive_type("ack")
        assert second["message"] == first["message"]
        assert (first["duplicate"], second["duplicate"]) == (False, True)
        # The same client_id with another file list is another message: refused.
        await a.send({**frame, "files": [pdf.pk, other.pk]})
        assert (await a.receive_type("error"))["code"] == "client_id_conflict"
        await a.close()

    run(scenario)
    message = Message.objects.get()
    assert list(message.attachments.values_list("file_id", flat=True)) == [pdf.pk]


def test_a_send_without_files_still_needs_a_body(alice: User, dm: Conversation) -> None:
    async def scenario() -> None:
        a = await connect(alice)
        await a.send(send_frame(dm, "   ", []))
        assert (await a.receive_type("error"))["code"] == "invalid"
        await a.close()

    run(scenario)
    assert not Message.objects.exists()


def test_files_are_listed_in_the_resume_replay(alice: User, bob: User, dm: Conversation) -> None:
    pdf = upload(alice)
    sent = services.message_send(actor=alice, conversation_id=dm.pk, body="", file_ids=[pdf.pk])

    async def scenario() -> None:
        b = await connect(bob)
        await b.send({"type": "resume", "after": sent.event_id - 1})
        message = (await b.receive_type("message"))["message"]
        assert [f["id"] for f in message["files"]] == [pdf.pk]
        await b.close()

    run(scenario)


def test_too_many_files_or_one_twice_is_invalid(alice: User, dm: Conversation) -> None:
    pdf = upload(alice)
    many = [upload(alice, PDF + str(n).encode(), f"{n}.pdf").pk for n in range(11)]

    async def scenario() -> None:
        a = await connect(alice)
        for files in ([pdf.pk, pdf.pk], many):
            await a.send(send_frame(dm, "", files))
            assert (await a.receive_type("error"))["code"] == "invalid"
        await a.close()

    run(scenario)
    assert not Message.objects.exists()
