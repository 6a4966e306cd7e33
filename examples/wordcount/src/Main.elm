port module Main exposing (main)

{-| Word counts across events. Each event is a string holding JSON
`{"text": "..."}`; the app keeps a `Dict String Int` of lower-cased words and
answers with the three most frequent (ties by word), the number of distinct
words and the total seen so far.

    event:    {"text": "The quick the"}
    response: {"top": [{"word": "the", "count": 2}, {"word": "quick", "count": 1}],
               "distinct": 2, "total": 3}
    on bad input: {"error": <Json.Decode.errorToString>}, state unchanged

-}

import Dict exposing (Dict)
import Json.Decode as Decode
import Json.Encode as Encode


port onEvent : (String -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type alias Model =
    { counts : Dict String Int
    , total : Int
    }


type Msg
    = Event String


main : Program () Model Msg
main =
    Platform.worker
        { init = \_ -> ( { counts = Dict.empty, total = 0 }, Cmd.none )
        , update = update
        , subscriptions = \_ -> onEvent Event
        }


update : Msg -> Model -> ( Model, Cmd Msg )
update (Event json) model =
    case Decode.decodeString (Decode.field "text" Decode.string) json of
        Err error ->
            ( model
            , respond (Encode.object [ ( "error", Encode.string (Decode.errorToString error) ) ])
            )

        Ok text ->
            let
                words =
                    String.words text
                        |> List.map String.toLower
                        |> List.filter (not << String.isEmpty)

                next =
                    { counts = List.foldl increment model.counts words
                    , total = model.total + List.length words
                    }
            in
            ( next, respond (encode next) )


increment : String -> Dict String Int -> Dict String Int
increment word =
    Dict.update word (Just << (+) 1 << Maybe.withDefault 0)


encode : Model -> Encode.Value
encode model =
    let
        top =
            Dict.toList model.counts
                |> List.sortWith byCountThenWord
                |> List.take 3

        entry ( word, count ) =
            Encode.object [ ( "word", Encode.string word ), ( "count", Encode.int count ) ]
    in
    Encode.object
        [ ( "top", Encode.list entry top )
        , ( "distinct", Encode.int (Dict.size model.counts) )
        , ( "total", Encode.int model.total )
        ]


byCountThenWord : ( String, Int ) -> ( String, Int ) -> Order
byCountThenWord ( word1, count1 ) ( word2, count2 ) =
    case compare count2 count1 of
        EQ ->
            compare word1 word2

        order ->
            order
