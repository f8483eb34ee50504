"""Awards: schemes, nominations from frozen figures, immutable decisions, exports."""
