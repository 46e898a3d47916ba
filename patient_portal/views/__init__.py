"""Route handlers: parse the request, call one service, answer with a page or JSON."""
