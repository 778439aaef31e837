"""The console's words in Chinese (first) and English. Pure data.

A rule's reasons come from the book in both languages (``reason_zh``, ``reason_en``, picked in
``views.py``); officers' notes are shown as written. Why a warning's notifications are held
(the "⏸ 暂停通知" tooltip) comes from its timeline the same way: :func:`held_why`.
"""

from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")

_T: dict[str, tuple[str, str]] = {
    "app": ("预警值班台", "Yujing duty console"),
    "board": ("实时预警", "Live warnings"),
    "map": ("站点地图", "Station map"),
    "roster": ("值班表", "Duty roster"),
    "health": ("系统状态", "Health"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "login_title": ("值班员登录", "Duty officer login"),
    "token": ("个人令牌", "Personal token"),
    "token_help": ("输入发给您本人的令牌（yujing token new --person）。您的每个操作都以您的名义记录。",
                   "Enter the token issued to you (yujing token new --person). Every action is "
                   "recorded in your name."),
    "bad_token": ("令牌无效", "Unknown token"),
    "too_many": ("登录失败次数过多，请 {n} 秒后再试。", "Too many failed logins: try again in {n} s."),
    "cross_site": ("跨站请求被拒绝：请从值班台页面操作。",
                   "Cross-site request refused: use the console's own page."),
    "logout_ask": ("退出登录？", "Log out?"),
    "lang_other": ("English", "中文"),
    "signed_in": ("当前用户", "Signed in as"),
    "grade": ("等级", "Grade"),
    "grade_1": ("蓝色 IV", "Blue IV"),
    "grade_2": ("黄色 III", "Yellow III"),
    "grade_3": ("橙色 II", "Orange II"),
    "grade_4": ("红色 I", "Red I"),
    "grade_0": ("无", "none"),
    "all": ("全部", "All"),
    "town": ("镇街", "Town"),
    "domain": ("领域", "Domain"),
    "hazard": ("灾种", "Hazard"),
    "station": ("站点", "Station"),
    "rule": ("规则", "Rule"),
    "state": ("状态", "State"),
    "raised": ("发布时间", "Raised"),
    "updated": ("更新", "Updated"),
    "value": ("数值", "Value"),
    "reason": ("原因", "Reason"),
    "team": ("责任组", "Team"),
    "no_warnings": ("当前无生效预警", "No active warnings"),
    "show_cleared": ("显示已解除", "Show cleared"),
    "live": ("实时", "live"),
    "offline": ("连接中断，正在重连…", "disconnected, reconnecting…"),
    "st_pending": ("待定", "pending"),
    "st_active": ("生效·未确认", "active · not acknowledged"),
    "st_acknowledged": ("已确认", "acknowledged"),
    "st_cleared": ("已解除", "cleared"),
    "muted": ("暂停通知", "notifications held"),
    "ack": ("确认", "Acknowledge"),
    "note": ("备注", "Add note"),
    "clear": ("销警", "Clear"),
    "silence": ("静默", "Silence"),
    "note_ph": ("备注（可选）", "note (optional)"),
    "note_req": ("备注内容", "note text"),
    "reason_req": ("销警原因（必填）", "reason (required)"),
    "silence_reason": ("静默原因（必填）", "reason (required)"),
    "silence_for": ("时长", "for"),
    "sent": ("已提交", "sent"),
    "no_rights": ("无权操作", "no rights"),
    "timeline": ("时间线", "Timeline"),
    "chart": ("监测数据与阈值", "Readings and thresholds"),
    "no_readings": ("网关内存窗口中暂无该站数据", "No readings of this station in the gateway's "
                                             "window"),
    "plan": ("处置方案（一点一方案）", "Response plan"),
    "no_plan": ("未登记处置方案", "No response plan registered"),
    "duty_now": ("当前值班", "On duty now"),
    "duty_next": ("下一班", "Next shift"),
    "role_A": ("A岗", "A"),
    "role_B": ("B岗", "B"),
    "role_leader": ("带班领导", "Leader"),
    "role_reminder": ("提醒", "reminder"),
    "thresholds": ("登记阈值", "Registered thresholds"),
    "escalation": ("升级呼叫", "Escalation"),
    "esc_next": ("下一步", "next step"),
    "esc_stopped": ("已停止", "stopped"),
    "esc_none": ("无", "none"),
    "acked_by": ("确认人", "Acknowledged by"),
    "contacts": ("联系人", "Contacts"),
    "latest": ("最新数据", "Latest readings"),
    "latest_samples": ("最新样本", "Latest samples"),
    "warnings_here": ("该站预警", "Warnings at this station"),
    "since": ("起", "from"),
    "until": ("至", "until"),
    "why": ("依据", "why"),
    "per_team": ("按责任组", "By team"),
    "per_town": ("按镇街", "By town"),
    "no_roster": ("未配置值班表（alerts.roster）", "No roster configured (alerts.roster)"),
    "ingest": ("接入速率（条/秒）", "Ingest rate (readings/s)"),
    "deadletters": ("死信（按原因，最近样本）", "Dead letters by reason (latest samples)"),
    "lag": ("消费延迟", "Consumer lag"),
    "backlog": ("入库积压", "Sink backlog"),
    "not_scraped": ("未配置（worker.metrics_port / influx.metrics_port）",
                    "not configured (worker.metrics_port / influx.metrics_port)"),
    "source": ("来源", "Source"),
    "count": ("数量", "Count"),
    "time": ("时间", "Time"),
    "code": ("代码", "Code"),
    "partition": ("分区", "Partition"),
    "kafka_incidents": ("预警快照跟随", "Incident snapshots"),
    "legend": ("图例", "Legend"),
    "no_active": ("无预警", "no warning"),
    "kind": ("类型", "Kind"),
    "open": ("打开", "open"),
    "by": ("操作人", "by"),
    "channel": ("渠道", "channel"),
    "ok": ("成功", "ok"),
    "failed": ("失败", "failed"),
    "k_pending": ("待定", "pending"),
    "k_raised": ("发布", "raised"),
    "k_upgraded": ("升级", "upgraded"),
    "k_downgraded": ("降级", "downgraded"),
    "k_notified": ("已通知", "notified"),
    "k_failed": ("通知失败", "delivery failed"),
    "k_escalated": ("升级呼叫（未确认）", "escalated (no ack)"),
    "k_reminder": ("提醒", "reminder"),
    "k_acknowledged": ("已确认", "acknowledged"),
    "k_note": ("备注", "note"),
    "k_report": ("处置回报", "report"),
    "k_refused": ("销警被拒", "clear refused"),
    "report": ("统计报表", "Reports"),
    "notices": ("安全提示", "Notices"),
    "report_from": ("开始日期", "From"),
    "report_to": ("结束日期（含）", "To (included)"),
    "report_by": ("按", "By"),
    "report_show": ("生成", "Show"),
    "report_help": ("按预警发布时间统计；确认、销警用时从发布起算；"
                    "缺回报：橙色及以上（alerts.reports.required_for）预警无处置回报；"
                    "转移、撤离人数取每条预警最新回报。",
                    "Counted by when each warning was raised; times to acknowledge and clear run "
                    "from the raise; reports missing: orange and above (alerts.reports."
                    "required_for) with no report-back; people from each warning's latest report."),
    "report_back": ("处置回报", "Report back"),
    "report_due": ("待回报", "report due"),
    "due_help": ("橙色及以上预警须提交处置回报：未回报的（含已由规则解除的）列在这里。",
                 "Orange and red warnings need a report-back: those without one (closed by their "
                 "rule too) are listed here."),
    "report_status": ("处置状态", "Status"),
    "rs_handling": ("处置中", "in hand"),
    "rs_done": ("已处置", "dealt with"),
    "rs_support": ("需支援", "support needed"),
    "report_measures": ("采取的措施", "Measures taken"),
    "report_evac": ("转移人数", "Transferred"),
    "report_withdrawn": ("撤离人数", "Withdrawn"),
    "report_stopped": ("停产", "Production"),
    "stop_unsaid": ("未说明", "not said"),
    "stop_yes": ("已停产", "stopped"),
    "stop_no": ("未停产", "goes on"),
    "report_photos": ("照片链接（每行一个）", "Photo links (one a line)"),
    "report_text": ("说明", "Note"),
    "report_send": ("提交回报", "Send report"),
    "k_cleared": ("解除", "cleared"),
    "k_inhibited": ("被抑制", "inhibited"),
    "k_silenced": ("被静默", "silenced"),
    "k_unmuted": ("恢复通知", "unmuted"),
    "k_held": ("未发送", "not sent"),
    "d_flood": ("三防", "Flood & wind"),
    "d_forest": ("森防", "Forest fire"),
    "d_chemical": ("危化", "Hazardous chemicals"),
    "d_industrial": ("工贸", "Industrial safety"),
    "d_duty_room": ("值班室", "Duty room"),
    "d_enterprise": ("企业值班", "Enterprise duty"),
    "d_town": ("镇街监管", "Town regulators"),
    "outline": ("东莞市（手绘示意轮廓，非测绘数据）", "Dongguan (hand-drawn outline, not survey data)"),
    "uptime": ("运行时间", "Uptime"),
    "mqtt": ("MQTT 连接", "MQTT connected"),
    "accepted": ("已接收", "Accepted"),
    "rejected": ("已拒收", "Rejected"),
    "window": ("数据窗口", "Readings window"),
    "readings": ("条", "readings"),
    "worker_rate": ("规则引擎处理速率", "Worker evaluation rate"),
    "notifications": ("通知", "Notifications"),
    "self_faults": ("系统自身故障", "System faults"),
    "wd_ok": ("无：看门狗未发现故障", "none: the watchdog finds nothing wrong"),
    "wd_off": ("未配置看门狗（watchdog:）", "no watchdog configured (watchdog:)"),
    "what": ("故障", "Fault"),
    "todo": ("处置", "What to do"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "menu": ("菜单", "Menu"),
    "actions": ("处置操作", "Actions"),
    "pending_title": ("待定预警", "Pending warnings"),
    "pending_help": ("条件已成立，但尚未持续满规则要求的时长（for:），暂未通知任何人。",
                     "The condition holds, but not yet for as long as the rule's for: asks; "
                     "nobody has been told yet."),
    "no_pending": ("无待定预警", "No pending warnings"),
    "held": ("已持续 / 需持续", "Held / must hold"),
    "events": ("事件详情（摄像头 / 工业事件）", "Event detail (camera / industrial)"),
    "image": ("查看图片", "Image"),
    "bbox": ("目标框", "Box"),
    "confidence": ("置信度", "Confidence"),
    "detail": ("详情", "Detail"),
    "event_id": ("事件编号", "Event id"),
    "ev_smoke": ("烟雾", "smoke"),
    "ev_fire": ("明火", "flame"),
    "ev_spark": ("火花", "spark"),
    "ev_vent_burst": ("泄爆片爆破", "vent panel burst"),
    "ev_airlock_fault": ("锁气卸灰阀故障", "airlock fault"),
    "ev_extinguisher": ("灭火装置动作", "extinguisher released"),
    "illustrative": ("示例方案，非正式：请以本单位正式预案为准", "Illustrative plan, not official: "
                     "follow your unit's own plan"),
    "storm": ("暴雨专题", "Storm view"),
    "rain_rank": ("雨量站累计雨量排名", "Rain gauges ranked by accumulated rain"),
    "rank": ("排名", "#"),
    "rain_1h": ("1小时雨量", "1 h rain"),
    "rain_3h": ("3小时雨量", "3 h rain"),
    "rain_24h": ("24小时雨量", "24 h rain"),
    "last_report": ("最新数据", "Last reading"),
    "mm": ("毫米", "mm"),
    "metre": ("米", "m"),
    "as_of": ("截至", "as of"),
    "partial": ("该时段数据未全部在控制台窗口内：为已有数据之和",
                "the window is not fully covered by the readings kept: a sum of those"),
    "rainstorm_day": ("暴雨日（24小时≥50毫米）", "rainstorm day (≥ 50 mm in 24 h)"),
    "bands": ("分级标准（来自已加载规则）", "Grades (from the loaded rules)"),
    "storm_warnings": ("暴雨与内涝预警（生效、待定）", "Rain and waterlogging warnings (open, pending)"),
    "points": ("易涝点积水深度与处置方案", "Waterlogging points: depth and response plan"),
    "depth": ("积水深度", "Depth"),
    "no_data": ("无数据", "no data"),
    "no_town_bounds": ("镇街边界：项目可用的软件包中未找到东莞各镇街的行政边界数据，故未绘制；"
                       "市界为手绘示意，镇名标在其站点附近。",
                       "Town boundaries: no available package carries Dongguan's town (镇街) "
                       "boundaries, so none are drawn; the city outline is hand-drawn and town "
                       "names sit by their stations."),
}


def t(key: str, lang: str) -> str:
    zh, en = _T.get(key, (key, key))
    return en if lang == "en" else zh


def table(lang: str) -> dict[str, str]:
    i = 1 if lang == "en" else 0
    return {k: v[i] for k, v in _T.items()}


def held_why(w: Any, lang: str) -> str:
    """Why ``w``'s notifications are held, in the reader's language ('' when they are not).

    ``w.muted`` is the book's English sentence ("silenced by silence s1 [station=g1] …"),
    kept to tell one hold from the next; the timeline entry the hold wrote carries it in
    words in both languages (「暂停通知：静默 s1 生效中（b1设置：…）」). A record from before
    words has only the sentence, shown as it is.
    """
    if not w.muted:
        return ""
    for e in reversed(w.timeline):
        if e.kind in ("inhibited", "silenced") and e.reason == w.muted:
            return (e.reason_en if lang == "en" else e.reason_zh) or e.reason
    return w.muted
