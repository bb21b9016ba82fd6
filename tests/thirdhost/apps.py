from django.apps import AppConfig


class ThirdHostConfig(AppConfig):
    name = "tests.thirdhost"
    label = "thirdhost"
    default_auto_field = "django.db.models.BigAutoField"
