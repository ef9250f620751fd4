"""Static, offline HTML explorer of a run folder (index + one page per cluster, vis-network graphs)."""

from exporters.site.builder import KIND_LABELS, SitePaths, page_name, script_json, write_site

__all__ = ["write_site", "SitePaths", "page_name", "script_json", "KIND_LABELS"]
