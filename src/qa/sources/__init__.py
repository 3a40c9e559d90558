"""Articles from the web: a careful HTTP client, pages read into articles, and RSS/Atom feeds polled."""
