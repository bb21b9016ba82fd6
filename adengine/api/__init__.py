"""adengine's REST API (Django REST framework), versioned under /api/adengine/v1/."""
