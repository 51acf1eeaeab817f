"""Provider post-call payloads shaped like the providers' documented examples, and their signers.

The signers follow each provider's published scheme (ElevenLabs SDK `construct_event`, Retell
SDK `webhook_auth`, Vapi's HMAC credential defaults), written out here independently of
`virtual_agents.webhooks`, so a mistake there cannot be mirrored into the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def elevenlabs_headers(body: bytes, secret: str, *, at: float | None = None) -> dict[str, str]:
    t = str(int(time.time() if at is None else at))
    return {"HTTP_ELEVENLABS_SIGNATURE": f"t={t},v0={_hex(secret, t.encode() + b'.' + body)}"}


def vapi_headers(body: bytes, secret: str, *, at: float | None = None, ms: bool = True) -> dict[str, str]:
    now = time.time() if at is None else at
    ts = str(int(now * 1000) if ms else int(now))
    return {"HTTP_X_SIGNATURE": _hex(secret, ts.encode() + b"." + body), "HTTP_X_TIMESTAMP": ts}


def vapi_secret_header(secret: str) -> dict[str, str]:
    return {"HTTP_X_VAPI_SECRET": secret}


def retell_headers(body: bytes, api_key: str, *, at: float | None = None) -> dict[str, str]:
    v = str(int((time.time() if at is None else at) * 1000))
    return {"HTTP_X_RETELL_SIGNATURE": f"v={v},d={_hex(api_key, body + v.encode())}"}


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def elevenlabs_transcription(
    conversation_id: str = "conv_01jm7s0e8yf9b6n2kx4t3w5q8r", call_id: str | None = "call-1"
) -> dict[str, Any]:
    sip_headers = {"X-Voiso-Call-Id": call_id} if call_id else {}
    return {
        "type": "post_call_transcription",
        "event_timestamp": 1739537297,
        "data": {
            "agent_id": "agent_7101k5zvyjhmfg983brhmhkd98n6",
            "conversation_id": conversation_id,
            "status": "done",
            "transcript": [
                {
                    "role": "agent",
                    "message": "Hello, this is Acme support. How can I help?",
                    "tool_calls": None,
                    "tool_results": None,
                    "feedback": None,
                    "time_in_call_secs": 0,
                    "conversation_turn_metrics": None,
                },
                {
                    "role": "user",
                    "message": "I'd like to upgrade my plan, please.",
                    "tool_calls": None,
                    "tool_results": None,
                    "feedback": None,
                    "time_in_call_secs": 3,
                    "conversation_turn_metrics": None,
                },
                {
                    "role": "agent",
                    "message": None,
                    "tool_calls": [{"tool_name": "transfer_to_number", "params_as_json": "{}"}],
                    "tool_results": [],
                    "feedback": None,
                    "time_in_call_secs": 7,
                    "conversation_turn_metrics": None,
                },
            ],
            "metadata": {
                "start_time_unix_secs": 1739537297,
                "call_duration_secs": 22,
                "cost": 296,
                "termination_reason": "Call transferred",
                "phone_call": {
                    "type": "sip_trunking",
                    "direction": "inbound",
                    "phone_number_id": "phnum_5601k5zvyjhmfg983brhmhkd98n6",
                    "agent_number": "+19990000042",
                    "external_number": "+442079460018",
                    "call_sid": "f5c0b2a7-5f0e-4a7e-9d8e-0b6c1a2d3e4f",
                    "sip_header_dynamic_variables": sip_headers,
                },
            },
            "analysis": {
                "evaluation_criteria_results": {},
                "data_collection_results": {},
                "call_successful": "success",
                "transcript_summary": (
                    "The caller wants to upgrade their plan; the agent transferred them to sales."
                ),
            },
            "conversation_initiation_client_data": {
                "conversation_config_override": {"agent": {"prompt": None, "first_message": None}},
                "custom_llm_extra_body": {},
                "dynamic_variables": {"system__caller_id": "+442079460018"},
            },
        },
    }


def elevenlabs_audio(
    conversation_id: str = "conv_01jm7s0e8yf9b6n2kx4t3w5q8r", size: int = 1024
) -> dict[str, Any]:
    return {
        "type": "post_call_audio",
        "event_timestamp": 1739537319,
        "data": {
            "agent_id": "agent_7101k5zvyjhmfg983brhmhkd98n6",
            "conversation_id": conversation_id,
            "full_audio": "SUQzBAAAAAAA" + "A" * size,
        },
    }


def elevenlabs_initiation_failure(conversation_id: str = "conv_01jm7s0failed") -> dict[str, Any]:
    return {
        "type": "call_initiation_failure",
        "event_timestamp": 1759931652,
        "data": {
            "agent_id": "agent_7101k5zvyjhmfg983brhmhkd98n6",
            "conversation_id": conversation_id,
            "failure_reason": "busy",
            "metadata": {"type": "sip", "body": {"sip_status_code": 486, "error_reason": "Busy Here"}},
        },
    }


def vapi_end_of_call(
    call_id: str = "3d9f1e42-7c2b-4a51-9a3e-5b7c8d9e0f11", voiso_call_id: str | None = "call-2"
) -> dict[str, Any]:
    sip_headers = {"x-voiso-call-id": voiso_call_id} if voiso_call_id else {}
    return {
        "message": {
            "timestamp": 1764010000000,
            "type": "end-of-call-report",
            "endedReason": "assistant-forwarded-call",
            "call": {
                "id": call_id,
                "orgId": "7a1b2c3d-0000-4000-8000-000000000001",
                "type": "inboundPhoneCall",
                "phoneCallTransport": "sip",
                "phoneCallProviderDetails": {"sip": {"headers": sip_headers}},
                "status": "ended",
            },
            "artifact": {
                "recordingUrl": "https://storage.vapi.ai/3d9f1e42-mono.wav",
                "stereoRecordingUrl": "https://storage.vapi.ai/3d9f1e42-stereo.wav",
                "transcript": "AI: Thanks for calling Acme.\nUser: My order never arrived.\n",
                "messages": [
                    {
                        "role": "system",
                        "message": "You are Acme's front desk.",
                        "time": 1764009990000,
                        "secondsFromStart": 0,
                    },
                    {
                        "role": "bot",
                        "message": "Thanks for calling Acme.",
                        "time": 1764009991000,
                        "endTime": 1764009992500,
                        "secondsFromStart": 0.64,
                        "duration": 1500,
                    },
                    {
                        "role": "user",
                        "message": "My order never arrived.",
                        "time": 1764009994000,
                        "endTime": 1764009996000,
                        "secondsFromStart": 3.2,
                        "duration": 2000,
                    },
                    {
                        "role": "tool_calls",
                        "toolCalls": [{"id": "t1", "type": "function"}],
                        "time": 1764009997000,
                        "secondsFromStart": 6.1,
                    },
                ],
            },
            "analysis": {
                "summary": "Missing order; the caller was handed to support.",
                "successEvaluation": "true",
            },
            "startedAt": "2026-11-24T18:59:50.000Z",
            "endedAt": "2026-11-24T19:00:20.000Z",
            "cost": 0.0841,
        }
    }


def vapi_status_update(call_id: str = "3d9f1e42-7c2b-4a51-9a3e-5b7c8d9e0f11") -> dict[str, Any]:
    return {"message": {"type": "status-update", "status": "in-progress", "call": {"id": call_id}}}


def retell_call(
    event: str = "call_ended",
    call_id: str = "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
    voiso_call_id: str | None = "call-3",
    *,
    with_analysis: bool = False,
) -> dict[str, Any]:
    call: dict[str, Any] = {
        "call_type": "phone_call",
        "from_number": "+442079460018",
        "to_number": "+19990000042",
        "direction": "inbound",
        "call_id": call_id,
        "agent_id": "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD",
        "call_status": "ended",
        "metadata": {},
        "retell_llm_dynamic_variables": {"customer_name": "John Doe"},
        "custom_sip_headers": {"X-Voiso-Call-Id": voiso_call_id} if voiso_call_id else {},
        "start_timestamp": 1714608475945,
        "end_timestamp": 1714608491736,
        "disconnection_reason": "call_transfer",
        "transcript": "Agent: hi how are you doing?\nUser: Doing pretty well. How are you?\n",
        "transcript_object": [
            {
                "role": "agent",
                "content": "hi how are you doing?",
                "words": [{"word": "hi", "start": 0.7, "end": 1.3}],
            },
            {
                "role": "user",
                "content": "Doing pretty well. How are you?",
                "words": [{"word": "Doing", "start": 3.5, "end": 3.9}],
            },
        ],
        "transcript_with_tool_calls": [],
        "opt_out_sensitive_data_storage": False,
        "recording_url": "https://dxc03zgurdly9.cloudfront.net/Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6/recording.wav",
    }
    if with_analysis:
        call["call_analysis"] = {
            "call_summary": "The caller asked for billing and was transferred.",
            "in_voicemail": False,
            "user_sentiment": "Positive",
            "call_successful": True,
            "custom_analysis_data": {},
        }
    return {"event": event, "call": call}
