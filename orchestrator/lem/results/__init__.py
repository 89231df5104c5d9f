"""Results: read a results tree through the contract, aggregate across cycles, export, plot, report.

Entry points: ``lem.results.summary.summarize_campaign`` (a ``CampaignSummary``) and
``lem.results.tables.summary_table`` (a rich table of it). Modules: ``load`` (walk and read),
``stats`` (Student-t statistics), ``summary``, ``validity`` (flags), ``tables``, ``export``,
``plots`` (optional matplotlib), ``report``, ``compare``, ``show`` (CLI views).
"""
