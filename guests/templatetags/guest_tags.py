from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """{{ dict|get_item:key }} (sparklines by guest id); {} when absent."""
    return (mapping or {}).get(key, {})
