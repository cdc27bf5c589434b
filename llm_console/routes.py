"""Console URLs, in one place."""

LOGIN = "/login"
OVERVIEW = "/"
USAGE = "/usage"
LOGS = "/logs"
COSTS = "/costs"
SPEND = "/spend"
EMBEDDINGS = "/embeddings"
CATALOG = "/models"
CONFIG = "/config"
ROUTING = "/config/routing"
CONFIG_IO = "/config/yaml"
KEYS = "/keys"
LIMITS = "/limits"
LIMIT_TIERS = "/limits/tiers"  # limit tiers, their holders and upgrade suggestions
ALERTS = "/alerts"
FLEET = "/fleet"
FLEET_DEPLOYMENT = "/fleet/deployment"  # ?deployment=<id>, like the logs' ?id=<request>
FLEET_KV = "/fleet/kv-cache"
ANALYTICS = "/analytics"
ANALYTICS_LIMITS = "/analytics/limits"  # rate-limit analytics: throttles, top consumers, breaches, abuse
TELEMETRY = "/config/telemetry"  # Langfuse and OpenTelemetry export settings and status
PROMPTS = "/prompts"
PROMPT_DETAIL = "/prompts/detail"  # ?name=<prompt name>
ORG = "/organization"
AUDIT = "/audit"
INVITE = "/invite"
