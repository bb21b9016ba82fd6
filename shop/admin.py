from django.contrib import admin

from .models import Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["slug", "name_en", "name_zh"]
    search_fields = ["slug", "name_en", "name_zh"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "title_en", "brand", "category", "price", "stock", "is_active"]
    list_filter = ["category", "is_active"]
    search_fields = ["sku", "title_en", "title_zh", "brand"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["number", "customer__username"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    raw_id_fields = ["customer"]
