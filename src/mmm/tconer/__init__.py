"""TCONER: open-domain NER (from Pile-NER-type) plus an open-domain text-level label.

``convert`` turns conversations into entity pairs, ``label`` asks an LLM for a topic label and
applies the human overrides, ``review`` exports a sheet for reviewers and merges their edits back.
"""
