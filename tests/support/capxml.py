"""CAP 1.2 messages for tests, as a meteorological bureau would send them (valid against the XSD
unless a test breaks them on purpose)."""

from __future__ import annotations

SENDER = "gdqx@gd.gov.cn.example"
NS = "urn:oasis:names:tc:emergency:cap:1.2"
# A polygon around Humen and Chang'an (the two towns' gauges: 22.815,113.673 and 22.816,113.803).
HUMEN_CHANGAN = "22.70,113.60 22.90,113.60 22.90,113.85 22.70,113.85 22.70,113.60"


def cap_xml(identifier: str, event: str = "暴雨黄色预警信号", msg_type: str = "Alert",
            sent: str = "2026-06-01T08:00:00+08:00", expires: str = "2026-06-01T20:00:00+08:00",
            severity: str = "Moderate", refs: list[tuple[str, str]] = (), status: str = "Actual",
            polygon: str | None = HUMEN_CHANGAN, circle: str | None = None,
            area_desc: str = "东莞市", geocode: str | None = None, info: bool = True,
            category: str = "Met", web: str = "http://www.tqyb.com.cn.example/signal/1") -> bytes:
    references = (f"<references>{' '.join(f'{SENDER},{i},{t}' for i, t in refs)}</references>"
                  if refs else "")
    area = f"<areaDesc>{area_desc}</areaDesc>"
    area += f"<polygon>{polygon}</polygon>" if polygon else ""
    area += f"<circle>{circle}</circle>" if circle else ""
    area += (f"<geocode><valueName>GB/T 2260</valueName><value>{geocode}</value></geocode>"
             if geocode else "")
    body = (f"<info><language>zh-CN</language><category>{category}</category><event>{event}</event>"
            f"<urgency>Expected</urgency><severity>{severity}</severity><certainty>Likely</certainty>"
            f"<expires>{expires}</expires>"
            f"<senderName>东莞市气象台</senderName><headline>东莞市气象台发布{event}</headline>"
            f"<description>预计未来6小时将出现暴雨。</description>"
            f"<web>{web}</web><area>{area}</area></info>") if info else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{NS}">'
            f"<identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{sent}</sent>"
            f"<status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>"
            f"{references}{body}</alert>").encode()
