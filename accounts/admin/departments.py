"""Departments in the admin: HR names them and their heads."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import Department, User


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "head", "member_count"]
    search_fields = ["name"]
    autocomplete_fields = ["head"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Department]:
        return super().get_queryset(request).select_related("head").annotate(n=Count("members"))

    @admin.display(description="People", ordering="n")
    def member_count(self, obj: Department) -> int:
        return obj.n  # type: ignore[attr-defined]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "head":
            # Only an active person can lead; the service refuses others too.
            kwargs["queryset"] = User.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Department, form: forms.ModelForm, change: bool) -> None:
        services.department_save(department=obj)

    def delete_model(self, request: HttpRequest, obj: Department) -> None:
        services.department_delete(department=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Department]) -> None:
        for department in queryset:
            services.department_delete(department=department)
