"""Write natlens/data/services.tsv, the service ports natlens treats as "listed".

The list comes from this machine's /etc/services (Debian's netbase package, which keeps the
widely used subset of the IANA Service Name and Transport Protocol Port Number Registry). It is
bundled so that every machine decides the same way. Run it again to refresh the list.
"""

from __future__ import annotations

import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "natlens" / "data" / "services.tsv"


def main(path: str = "/etc/services") -> None:
    rows: set[tuple[int, str, str]] = set()
    for line in Path(path).read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        port, protocol = fields[1].split("/", 1)
        if protocol in ("tcp", "udp") and port.isdigit():
            rows.add((int(port), protocol, fields[0]))
    lines = ["# port\tprotocol\tname  (from /etc/services, netbase; derived from IANA)"]
    lines += [f"{p}\t{proto}\t{name}" for p, proto, name in sorted(rows)]
    TARGET.write_text("\n".join(lines) + "\n")
    print(f"{TARGET}: {len(rows)} service ports")


if __name__ == "__main__":
    main(*sys.argv[1:])
