"""The HTTP adapter: the JSON API, the HTML pages, error mapping and abuse limits, around one `QA`."""
