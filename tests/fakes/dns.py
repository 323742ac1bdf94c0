"""A local UDP DNS server for tests: answers from a zone table, NXDOMAIN for the rest, silence for some names."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

# name → {record type: [rdata text]}; names that are absent answer NXDOMAIN.
DEFAULT_ZONE: dict[str, dict[str, list[str]]] = {
    "mx-ok.example.net": {"MX": ["10 mx1.mx-ok.example.net.", "20 mx2.mx-ok.example.net."]},
    "a-only.example.net": {"A": ["93.184.215.14"]},
    "null-mx.example.net": {"MX": ["0 ."], "A": ["93.184.215.14"]},
    "no-mail.example.net": {"TXT": ['"hello"']},  # exists, but no MX, A or AAAA
    "example.com": {"MX": ["10 mx.example.com."]},
    "example.org": {"MX": ["10 mx.example.org."]},
}
SILENT = {"silent.example.net"}


@dataclass
class FakeDNS:
    """Serves DNS over UDP on 127.0.0.1 in a thread; `queries` counts (name, type) asked."""

    zone: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ZONE.items()})
    silent: set[str] = field(default_factory=lambda: set(SILENT))
    queries: Counter[tuple[str, str]] = field(default_factory=Counter)
    port: int = 0
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        """host:port for EA_DNS_SERVERS."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeDNS:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                wire, client = self._sock.recvfrom(4096)
            except OSError:
                return  # socket closed by stop()
            reply = self.answer(dns.message.from_wire(wire))
            if reply is not None:
                try:
                    self._sock.sendto(reply.to_wire(), client)
                except OSError:
                    return

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to one query, or None to stay silent."""
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries[(name, rtype)] += 1
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        records = self.zone.get(name)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif rtype in records:
            response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", rtype, records[rtype]))
        return response
