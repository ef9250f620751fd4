"""Static, offline HTML explorer of a run folder (index + one page per cluster, vis-network graphs)."""

from exporters.site.builder import KIND_LABELS, MAX_PAGES, SitePaths, page_name, paged_clusters, script_json, write_site

__all__ = ["write_site", "SitePaths", "page_name", "paged_clusters", "script_json", "KIND_LABELS", "MAX_PAGES"]
