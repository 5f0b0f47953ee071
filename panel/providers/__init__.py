"""Providers: one seam per external API. Each owns its SDK client and speaks its wire format."""
