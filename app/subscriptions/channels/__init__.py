"""Delivery channels: how an outbox message reaches its subscriber, one plug-in each.

A channel owns its transport (e.g. an HTTP session with SAS's mutual TLS), tells which
subscribers it serves, and keeps its subscribers' health from the outcomes (a failing
Subscription goes to `error`). The application registers its channels once
(app/__init__.py); the worker hands each message to the channel that owns it.
"""
